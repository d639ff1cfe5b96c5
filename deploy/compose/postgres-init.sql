-- Argilla keeps its own database next to the project's, as in the local stack.
CREATE DATABASE argilla;

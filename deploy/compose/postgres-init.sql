-- Argilla and Label Studio keep their own databases next to the project's, as in the local stack.
CREATE DATABASE argilla;
CREATE DATABASE label_studio;

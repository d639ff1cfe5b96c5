"""Label Studio's own settings, with its job queues pointed at a socket that does not exist.

The open-source edition runs its jobs in the request and never uses Redis, yet at start it pings the
Redis of its queue settings, localhost:6379 by default: the stack's own Redis. A socket path that
does not exist makes that ping fail at once, without touching any Redis.
"""

import os

# Label Studio's settings read django.conf.settings while they load, which imports the module that
# DJANGO_SETTINGS_MODULE names: that must be theirs, loaded so far, not this one, still empty.
os.environ["DJANGO_SETTINGS_MODULE"] = "label_studio.core.settings.label_studio"
from label_studio.core.settings.label_studio import *  # noqa: F403
from label_studio.core.settings.label_studio import BASE_DATA_DIR, RQ_QUEUES

os.environ["DJANGO_SETTINGS_MODULE"] = __name__

NO_REDIS_SOCKET = os.path.join(BASE_DATA_DIR, "no-redis-here.sock")

RQ_QUEUES = {
    name: {"UNIX_SOCKET_PATH": NO_REDIS_SOCKET, "DB": 0, "DEFAULT_TIMEOUT": queue["DEFAULT_TIMEOUT"]}
    for name, queue in RQ_QUEUES.items()
}

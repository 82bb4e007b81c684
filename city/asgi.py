import os
import warnings

from django.core.asgi import get_asgi_application

# WhiteNoise serves a static file as a sync iterator; under ASGI Django warns at every file that
# it has to consume it in a thread, which it does correctly. The files are small and few.
warnings.filterwarnings(
    "ignore", message="StreamingHttpResponse must consume synchronous iterators"
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "city.settings")
application = get_asgi_application()

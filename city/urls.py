from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from city.api.views import UnknownRoute
from city.identity.admin_login import ThrottledAdminAuthenticationForm

handler500 = "city.api.errors.api_server_error"

admin.site.site_header = "City admin"
admin.site.site_title = "City admin"
admin.site.site_url = None  # no public site to link to yet: the dashboard will be one
admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/v1/", include("tasks.urls")),
    path("api/v1/", include("credits.urls")),
    path("api/v1/", include("disputes.urls")),
    # Anything else under /api/ is a 404 in the contract's shape (after authentication).
    re_path(r"^api/", UnknownRoute.as_view()),
]

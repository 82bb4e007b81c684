from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path, reverse_lazy
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from city.api.views import UnknownRoute
from city.identity import views as identity_views
from city.identity.admin_login import ThrottledAdminAuthenticationForm
from city.identity.forms import EmailLoginForm
from credits import views as credit_views
from disputes import views as dispute_views
from tasks import agent_views
from tasks import views as task_views

handler500 = "city.api.errors.api_server_error"

admin.site.site_header = "City admin"
admin.site.site_title = "City admin"
admin.site.site_url = None  # no public site to link to yet: the dashboard will be one
admin.site.login_form = ThrottledAdminAuthenticationForm

# The owner dashboard: pages over the same services and rules as the API.
dashboard = (
    [
        path("", task_views.home, name="home"),
        path("tasks/", task_views.task_list, name="tasks"),
        path("tasks/new/", task_views.task_submit, name="submit"),
        path("tasks/<str:task_id>/", task_views.task_detail, name="task"),
        path("tasks/<str:task_id>/cancel/", task_views.task_cancel, name="task_cancel"),
        path("tasks/<str:task_id>/feedback/", task_views.task_feedback, name="task_feedback"),
        path("tasks/<str:task_id>/dispute/", dispute_views.dispute_file, name="dispute_file"),
        path(
            "disputes/<str:dispute_id>/withdraw/",
            dispute_views.dispute_withdraw,
            name="dispute_withdraw",
        ),
        path("credits/", credit_views.credits_page, name="credits"),
        path("tokens/", identity_views.tokens, name="tokens"),
        path("tokens/<int:token_id>/revoke/", identity_views.token_revoke, name="token_revoke"),
        path("agents/", agent_views.agent_list, name="agents"),
        path("agents/<str:agent_id>/", agent_views.agent_detail, name="agent"),
        path("agents/<str:agent_id>/keys/", agent_views.agent_key_create, name="agent_key_create"),
        path(
            "agents/<str:agent_id>/keys/<int:key_id>/revoke/",
            agent_views.agent_key_revoke,
            name="agent_key_revoke",
        ),
        path("signup/", identity_views.signup, name="signup"),
        path(
            "login/",
            auth_views.LoginView.as_view(
                template_name="dashboard/login.html",
                authentication_form=EmailLoginForm,
                redirect_authenticated_user=True,
            ),
            name="login",
        ),
        path("logout/", auth_views.LogoutView.as_view(), name="logout"),
        path(
            "password/",
            auth_views.PasswordChangeView.as_view(
                template_name="dashboard/password_change.html",
                success_url=reverse_lazy("dashboard:password_change_done"),
            ),
            name="password_change",
        ),
        path(
            "password/done/",
            auth_views.PasswordChangeDoneView.as_view(
                template_name="dashboard/password_change_done.html"
            ),
            name="password_change_done",
        ),
    ],
    "dashboard",
)

urlpatterns = [
    path("", include(dashboard)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/v1/", include("tasks.urls")),
    path("api/v1/", include("credits.urls")),
    path("api/v1/", include("disputes.urls")),
    # Anything else under /api/ is a 404 in the contract's shape (after authentication).
    re_path(r"^api/", UnknownRoute.as_view()),
]

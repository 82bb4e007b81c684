from django.urls import path

from tasks import api

urlpatterns = [
    path("tasks", api.TaskCollection.as_view()),
    path("tasks/<str:task_id>", api.TaskDetail.as_view()),
    path("tasks/<str:task_id>/events", api.TaskEvents.as_view()),
    path("tasks/<str:task_id>/stream", api.TaskStream.as_view()),
    path("stream", api.EveryTaskStream.as_view()),
    path("tasks/<str:task_id>/sandbox", api.SandboxCreate.as_view()),
    path("tasks/<str:task_id>/sandbox/<str:sandbox_id>", api.SandboxDetail.as_view()),
    path("tasks/<str:task_id>/executing", api.TaskExecuting.as_view()),
    path("tasks/<str:task_id>/complete", api.TaskComplete.as_view()),
    path("tasks/<str:task_id>/fail", api.TaskFail.as_view()),
    path("tasks/<str:task_id>/feedback", api.TaskFeedback.as_view()),
    path("tasks/<str:task_id>/cancel", api.TaskCancel.as_view()),
    path("agent/tasks", api.AgentTaskCollection.as_view()),
    path("agent/tasks/submitted", api.SubmittedTasks.as_view()),
    path("agents", api.AgentDirectory.as_view()),
]

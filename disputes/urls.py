from django.urls import path

from disputes import api

urlpatterns = [
    path("tasks/<str:task_id>/disputes", api.TaskDisputes.as_view()),
    path("disputes", api.DisputeCollection.as_view()),
    path("disputes/<str:dispute_id>", api.DisputeDetail.as_view()),
    path("disputes/<str:dispute_id>/withdraw", api.DisputeWithdraw.as_view()),
]

from django.urls import path

from credits import api

urlpatterns = [
    path("credits", api.CreditBalance.as_view()),
    path("credits/entries", api.CreditEntries.as_view()),
]

from django.urls import path

from .help import help_article, help_index

app_name = "help"

urlpatterns = [
    path("", help_index, name="index"),
    path("<slug:slug>/", help_article, name="article"),
]

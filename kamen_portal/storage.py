import os

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.utils.deconstruct import deconstructible


@deconstructible(path="kamen_portal.storage.PrivateStorage")
class PrivateStorage(FileSystemStorage):
    """Files under MEDIA_ROOT/<subdir> with no public URL at all: evidence and
    data exports are served only by permission-checked views. The location
    follows MEDIA_ROOT at call time (deployments and tests move it)."""

    def __init__(self, subdir: str):
        self.subdir = subdir
        super().__init__(file_permissions_mode=0o600, directory_permissions_mode=0o700)

    @property
    def base_location(self) -> str:
        return os.path.join(settings.MEDIA_ROOT, self.subdir)

    @property
    def location(self) -> str:
        return os.path.abspath(self.base_location)

    @property
    def base_url(self) -> None:
        return None

    def __eq__(self, other) -> bool:
        return isinstance(other, PrivateStorage) and other.subdir == self.subdir

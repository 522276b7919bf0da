"""Write operations of the members app, the only code that writes its
models: accounts and profiles (accounts), recording notifications (notify),
delivering their emails (delivery), the inbox and channel preferences
(preferences), data exports (exports), security notices and sign-in history
(security_notices), staff groups (staff). Views, admin, API, tasks, signals
and commands call these."""

from .accounts import member_profile_create, member_set_language

__all__ = ["member_profile_create", "member_set_language"]

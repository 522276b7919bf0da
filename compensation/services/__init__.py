"""Write operations of the compensation app. Views, API, admin, commands and
tasks call these; none of them holds business rules of its own."""

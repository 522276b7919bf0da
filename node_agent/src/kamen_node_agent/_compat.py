"""What the agent needs from newer Pythons, spelt so it runs on 3.9 and later
(pyproject's ``requires-python``): nodes run whatever their distribution ships."""

from datetime import timezone

# datetime.UTC arrived in 3.11; timezone.utc is the same object.
UTC = timezone.utc

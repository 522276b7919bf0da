"""The grounded self-help assistant (issue 15).

``nlu`` turns a question into tokens and an intent, ``retrieval`` finds help
articles, ``answers`` composes the answer from the member's own records (read
through the selectors of the apps below) and ``services`` holds the writes:
the anonymised question log, feedback and support requests. No module here
invents a figure: every number an answer states was read from a record or
from the published policy, and the answer cites where.
"""

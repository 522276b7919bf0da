from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from compensation.services.nodes import node_create


class Command(BaseCommand):
    help = "Register a service node and print its token (alone, on the last line)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Node name, e.g. sh-node-01")
        parser.add_argument("--description", default="")

    def handle(self, *args, name: str, description: str, **options) -> None:
        try:
            node, token = node_create(name=name, description=description, now=timezone.now())
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from exc
        self.stderr.write(
            f"Node {node.name} registered. Its token is shown once; store it on the node as "
            "the Authorization: Bearer value."
        )
        self.stdout.write(token)

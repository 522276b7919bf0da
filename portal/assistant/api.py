"""``POST /api/v1/assistant/``: a question in, a grounded answer out
(DESIGN §6), for a member's session or an anonymous visitor; and the thumbs
up/down on an answer. Thin: the services do the work."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from kamen_portal.api import CsrfSessionAuthentication, JSONObjectParser, error_responses
from members.security import client_ip

from .intents import INTENTS
from .nlu import MAX_QUESTION_LENGTH, visible
from .services import assistant_ask, assistant_rate_check, question_rate
from .views import SESSION_KEY, conversation_of, member_of

LANGUAGES = ("zh-hans", "en")


@extend_schema_field(
    {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_QUESTION_LENGTH,
        "pattern": r"\S",
        "description": "The question, in Chinese or English (not only spaces)",
    }
)
class QuestionField(serializers.Field):
    """A string and nothing else (DRF's CharField would take 42 as "42"),
    with something in it besides white space."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(_("Send the question as a string."), code="invalid")
        typed = data
        data = visible(data)
        if not data.strip() and typed.strip():
            # Only invisible characters (controls, format marks): the schema's
            # "not only spaces" holds, so it gets an answer, the one for a
            # question nobody could read.
            data = "?"
        if len(data) > MAX_QUESTION_LENGTH:
            raise serializers.ValidationError(
                _("Questions can be at most %(n)d characters long.") % {"n": MAX_QUESTION_LENGTH},
                code="max_length",
            )
        if not data.strip():
            raise serializers.ValidationError(_("Type a question first."), code="blank")
        return data

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "boolean"})
class StrictBooleanField(serializers.Field):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            raise serializers.ValidationError(_("Send true or false."), code="invalid")
        return data

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "string", "enum": list(LANGUAGES)})
class LanguageField(serializers.Field):
    def to_internal_value(self, data):
        if data not in LANGUAGES:
            raise serializers.ValidationError(
                _("The language must be zh-hans or en."), code="invalid_choice"
            )
        return data

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "string", "format": "uuid"})
class StrictUUIDField(serializers.UUIDField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(_("Send the id as a string."), code="invalid")
        return super().to_internal_value(data)


class AskSerializer(serializers.Serializer):
    question = QuestionField()
    language = LanguageField(
        required=False,
        help_text="Answer in this language (default: the question's language)",
    )


class LinkSerializer(serializers.Serializer):
    label = serializers.CharField()
    url = serializers.CharField(help_text="A path on this site")
    kind = serializers.ChoiceField(
        choices=["receipt", "disconnect", "appeal", "policy", "status", "article", "page"]
    )


class NextStepSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["appeal", "support", "sign_in"],
        help_text="appeal: a pre-filled appeal form; support: send the conversation to staff "
        "(POST the page form); sign_in: sign in to see your records",
    )
    label = serializers.CharField()
    url = serializers.CharField()


class AnswerSerializer(serializers.Serializer):
    question_id = serializers.UUIDField(help_text="Rate the answer with this id")
    answer = serializers.CharField(help_text="Plain text; every figure in it is cited in links")
    intent = serializers.ChoiceField(choices=list(INTENTS))
    confidence = serializers.FloatField(min_value=0, max_value=1)
    language = serializers.ChoiceField(choices=list(LANGUAGES))
    article = serializers.CharField(
        allow_blank=True, help_text="Slug of the help article the answer draws on, if any"
    )
    links = LinkSerializer(many=True)
    next_step = NextStepSerializer(allow_null=True)


class FeedbackSerializer(serializers.Serializer):
    question_id = StrictUUIDField()
    helpful = StrictBooleanField()


class FeedbackResultSerializer(serializers.Serializer):
    question_id = serializers.UUIDField()
    helpful = serializers.BooleanField()


class AssistantThrottle(BaseThrottle):
    """Per member, or per address for anonymous visitors, in the shared
    cache (the same counter as the page's form)."""

    def allow_request(self, request, view) -> bool:
        member = member_of(request)
        decision = assistant_rate_check(
            member=member, client_ip=client_ip(request) or "", now=timezone.now()
        )
        self._wait = decision.retry_after
        return decision.allowed

    def wait(self):
        return getattr(self, "_wait", 60)


class _AssistantThrottled:
    """The refusal says what happened and when to come back, in the asker's
    language, with the same words as the assistant page (DRF's default is a
    generic "Request was throttled")."""

    def throttled(self, request, wait):
        seconds = max(int(wait or 0), 1)
        refusal = exceptions.Throttled(
            detail=_("Too many questions in a row. Try again in %(s)d seconds.") % {"s": seconds}
        )
        refusal.wait = seconds  # the Retry-After header; the sentence already says it
        raise refusal


class AssistantView(_AssistantThrottled, APIView):
    authentication_classes = [CsrfSessionAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [AssistantThrottle]
    parser_classes = [JSONObjectParser]

    @extend_schema(
        operation_id="assistant_ask",
        summary="Ask the assistant (member session or anonymous)",
        description=(
            "Answers from the help centre and, for a signed-in member, from their own records "
            "only. Every figure in the answer was read from the portal and the links cite "
            "where. A question naming another member number reveals nothing. Asking for a "
            "person opens a support request with the conversation (members)."
        ),
        request=AskSerializer,
        responses={
            200: AnswerSerializer,
            **error_responses(
                400,
                403,
                415,
                429,
                e400="Malformed JSON, not an object, too deep, or an invalid question (error names it)",
                e403="CSRF check failed (signed-in members send X-CSRFToken)",
                e415="Not application/json",
                e429="Too many questions: per member, or per address when anonymous",
            ),
        },
    )
    def post(self, request):
        serializer = AskSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        answer, logged, conversation = assistant_ask(
            question=data["question"],
            member=member_of(request),
            conversation=conversation_of(request),
            now=timezone.now(),
            language=data.get("language"),
        )
        if hasattr(request, "session"):
            request.session[SESSION_KEY] = conversation
        body = {
            "question_id": logged.public_id,
            "answer": answer.text,
            "intent": answer.intent,
            "confidence": answer.confidence,
            "language": answer.language,
            "article": answer.article,
            "links": [vars(link) for link in answer.links],
            "next_step": vars(answer.next_step) if answer.next_step else None,
        }
        return Response(AnswerSerializer(body).data)


class AssistantFeedbackView(_AssistantThrottled, APIView):
    authentication_classes = [CsrfSessionAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [AssistantThrottle]
    parser_classes = [JSONObjectParser]

    @extend_schema(
        operation_id="assistant_feedback",
        summary="Thumbs up or down on an answer",
        request=FeedbackSerializer,
        responses={
            200: FeedbackResultSerializer,
            **error_responses(
                400,
                403,
                404,
                415,
                429,
                e404="No answer with this question_id",
                e415="Not application/json",
            ),
        },
    )
    def post(self, request):
        serializer = FeedbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        rated = question_rate(
            public_id=data["question_id"], helpful=data["helpful"], now=timezone.now()
        )
        if rated is None:
            raise exceptions.NotFound(_("There is no such answer."), code="not_found")
        return Response(
            {"question_id": str(rated.public_id), "helpful": rated.helpful},
            status=status.HTTP_200_OK,
        )

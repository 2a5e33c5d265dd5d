"""One pydantic model per Rasa event type (Rasa 3.6's, the legacy form names, Rasa Pro's).

They only *check* events (``eventstore.events.validate_event`` runs ``ADAPTER``): events
stay plain JSON dicts everywhere else. ``EVENT_TYPES`` and ``PRO_EVENT_TYPES`` list the
names they accept.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    timestamp: float | None = None
    metadata: dict[str, Any] | None = None


class _Intent(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    name: str | None = None
    confidence: float | None = None


class _Entity(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    entity: str
    value: Any


class _ParseData(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    intent: _Intent | dict[str, Any] | None = None
    entities: list[_Entity] | None = None
    text: str | None = None


class UserUttered(_Event):
    event: Literal["user"]
    text: str | None = None
    parse_data: _ParseData | None = None
    input_channel: str | None = None
    message_id: str | None = None


class BotUttered(_Event):
    event: Literal["bot"]
    text: str | None = None
    data: dict[str, Any] | None = None


class ActionExecuted(_Event):
    event: Literal["action"]
    name: str | None = None
    policy: str | None = None
    confidence: float | None = None
    action_text: str | None = None
    hide_rule_turn: bool = False

    @model_validator(mode="after")
    def _needs_name(self) -> ActionExecuted:
        if self.name is None and self.action_text is None:
            raise ValueError("an action event needs 'name' or 'action_text'")
        return self


class SlotSet(_Event):
    event: Literal["slot"]
    name: str
    value: Any


class Restarted(_Event):
    event: Literal["restart"]


class UserUtteranceReverted(_Event):
    event: Literal["rewind"]


class ActionReverted(_Event):
    event: Literal["undo"]


class AllSlotsReset(_Event):
    event: Literal["reset_slots"]


class ReminderScheduled(_Event):
    event: Literal["reminder"]
    intent: str
    date_time: str
    entities: list[dict[str, Any]] | None = None
    name: str | None = None
    kill_on_user_msg: bool = True


class ReminderCancelled(_Event):
    event: Literal["cancel_reminder"]
    name: str | None = None
    intent: str | None = None
    entities: list[dict[str, Any]] | None = None


class StoryExported(_Event):
    event: Literal["export"]
    path: str | None = None


class FollowupAction(_Event):
    event: Literal["followup"]
    name: str


class ConversationPaused(_Event):
    event: Literal["pause"]


class ConversationResumed(_Event):
    event: Literal["resume"]


class AgentUttered(_Event):
    event: Literal["agent"]
    text: str | None = None
    data: Any = None


class ActiveLoop(_Event):
    event: Literal["active_loop"]
    name: str | None = None


class LegacyForm(_Event):
    """Rasa 1.x ``form``; replayed as ``active_loop``."""

    event: Literal["form"]
    name: str | None = None


class LoopInterrupted(_Event):
    event: Literal["loop_interrupted"]
    is_interrupted: bool = False


class LegacyFormValidation(_Event):
    """Rasa 1.x ``form_validation``; replayed as ``loop_interrupted`` (inverted)."""

    event: Literal["form_validation"]
    validate_: bool = Field(default=True, alias="validate")


class ActionExecutionRejected(_Event):
    event: Literal["action_execution_rejected"]
    name: str
    policy: str | None = None
    confidence: float | None = None


class SessionStarted(_Event):
    event: Literal["session_started"]


class DefinePrevUserUtteredFeaturization(_Event):
    event: Literal["user_featurization"]
    use_text_for_featurization: bool


class EntitiesAdded(_Event):
    event: Literal["entities"]
    entities: list[_Entity]


# -- Rasa Pro 3.x (CALM): flows, the dialogue stack, sub-agents (rasa/shared/core/events.py)
class FlowStarted(_Event):
    event: Literal["flow_started"]
    flow_id: str | None = None


class _FlowStep(_Event):
    flow_id: str | None = None
    step_id: str | None = None


class FlowInterrupted(_FlowStep):
    event: Literal["flow_interrupted"]


class FlowResumed(_FlowStep):
    event: Literal["flow_resumed"]


class FlowCompleted(_FlowStep):
    event: Literal["flow_completed"]


class FlowCancelled(_FlowStep):
    event: Literal["flow_cancelled"]


class DialogueStackUpdated(_Event):
    """``update``: a JSON Patch of the dialogue stack, dumped as a string."""

    event: Literal["stack"]
    update: str


class RoutingSessionEnded(_Event):
    event: Literal["routing_session_ended"]


class SessionEnded(_Event):
    """Rasa puts the reason in ``metadata._reason``."""

    event: Literal["session_ended"]


class _Agent(_Event):
    agent_id: str | None = None
    flow_id: str | None = None


class AgentStarted(_Agent):
    event: Literal["agent_started"]
    context_id: str | None = None


class AgentCompleted(_Agent):
    event: Literal["agent_completed"]
    status: str | None = None


class AgentInterrupted(_Agent):
    event: Literal["agent_interrupted"]


class AgentResumed(_Agent):
    event: Literal["agent_resumed"]


class AgentCancelled(_Agent):
    event: Literal["agent_cancelled"]
    reason: str | None = None


class ErrorHandled(_Event):
    event: Literal["error"]


PRO_MODELS = (
    FlowStarted,
    FlowInterrupted,
    FlowResumed,
    FlowCompleted,
    FlowCancelled,
    DialogueStackUpdated,
    RoutingSessionEnded,
    SessionEnded,
    AgentStarted,
    AgentCompleted,
    AgentInterrupted,
    AgentResumed,
    AgentCancelled,
    ErrorHandled,
)


EventModel = Annotated[
    UserUttered
    | BotUttered
    | ActionExecuted
    | SlotSet
    | Restarted
    | UserUtteranceReverted
    | ActionReverted
    | AllSlotsReset
    | ReminderScheduled
    | ReminderCancelled
    | StoryExported
    | FollowupAction
    | ConversationPaused
    | ConversationResumed
    | AgentUttered
    | ActiveLoop
    | LegacyForm
    | LoopInterrupted
    | LegacyFormValidation
    | ActionExecutionRejected
    | SessionStarted
    | DefinePrevUserUtteredFeaturization
    | EntitiesAdded
    | FlowStarted
    | FlowInterrupted
    | FlowResumed
    | FlowCompleted
    | FlowCancelled
    | DialogueStackUpdated
    | RoutingSessionEnded
    | SessionEnded
    | AgentStarted
    | AgentCompleted
    | AgentInterrupted
    | AgentResumed
    | AgentCancelled
    | ErrorHandled,
    Field(discriminator="event"),
]

ADAPTER: TypeAdapter[Any] = TypeAdapter(EventModel)


def _type_name(model: type[_Event]) -> str:
    name: str = model.model_fields["event"].annotation.__args__[0]  # type: ignore[union-attr]
    return name


#: Every event type name eventstore accepts: Rasa 3.6's 23, the two legacy form names and
#: Rasa Pro's (``PRO_EVENT_TYPES``).
EVENT_TYPES: frozenset[str] = frozenset(
    _type_name(m)
    for m in (*_Event.__subclasses__(), *_FlowStep.__subclasses__(), *_Agent.__subclasses__())
    if "event" in m.model_fields and m not in (_FlowStep, _Agent)
)
#: The event types Rasa Pro 3.x writes that Rasa 3.6 lacks.
PRO_EVENT_TYPES: frozenset[str] = frozenset(_type_name(m) for m in PRO_MODELS)

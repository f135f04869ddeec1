import pytest

from inter1srv.protocol.client_messages import CloseRequest, Configure, ProtocolError, parse_text_frame


def test_both_config_shapes_and_alias_expansion():
    a = parse_text_frame('{"include": ["conversation_quality", "feedback"]}')
    b = parse_text_frame('{"type": "session.configure", "include": ["conversation_quality", "feedback"]}')
    assert isinstance(a, Configure) and a == b
    wire = a.config.to_wire()
    assert wire["include"] == ["conversation_quality_overall", "conversation_quality_timeline"]
    assert wire["goal_dimensions"] == ["clarity", "authority", "energy", "rapport", "learning"]
    assert wire["model"] is None


def test_goal_dimensions_turn_feedback_on_for_those_only():
    msg = parse_text_frame('{"include": [], "goal_dimensions": ["rapport", "clarity"]}')
    assert msg.config.goal_dimensions == ("clarity", "rapport")
    off = parse_text_frame('{"include": ["conversation_quality_overall"]}')
    assert off.config.goal_dimensions is None and not off.config.feedback_on


def test_close():
    assert isinstance(parse_text_frame('{"type": "session.close"}'), CloseRequest)


@pytest.mark.parametrize(
    "text, code",
    [
        ("not json", "ih4000"),
        ("[1, 2]", "ih4000"),
        ('{"type": "hello"}', "ih4000"),
        ('{"foo": 1}', "ih4000"),
        ('{"include": ["everything"]}', "ih6001"),
        ('{"include": "conversation_quality"}', "ih6001"),
        ('{"goal_dimensions": ["charisma"]}', "ih6001"),
        ('{"include": [], "colour": "blue"}', "ih6001"),
        ('{"include": [], "model": "inter-2"}', "ih6001"),
    ],
)
def test_errors(text, code):
    msg = parse_text_frame(text)
    assert isinstance(msg, ProtocolError) and msg.code == code and msg.message

"""PPR parsing rules (alma-restore.md §3), checked on PPRs written by the test writer and hand-edited ones."""
import pytest

import ppr
from pprgen import build_ppr

EB1, EB2, EB3 = "uid://A002/Xb1e2a0/X1", "uid://A002/Xb1f3c4/X1", "uid://A002/Xc0ffee/X2a"
D1, D2, D3 = "uid___A002_Xb1e2a0_X1", "uid___A002_Xb1f3c4_X1", "uid___A002_Xc0ffee_X2a"
REL = "2023.1.00042.S_2024_09_02T00_00_00.000/SOUS_a/GOUS_b/MOUS_uid___A001_X3f01_X1a5"


def parse(sessions, asdms=((EB1, D1), (EB2, D2)), **kw):
    return ppr.parse_text(build_ppr("uid://A001/X3f01/X1a5", REL, list(asdms), sessions, **kw))


def sessions_of(p):
    return {a["AsdmDiskName"]: a["session"] for a in p["asdms"]}


def test_reads_fields_executeppr_reads():
    p = parse([[EB1], [EB2]])
    assert p["ProposalCode"] == "2023.1.00042.S"
    assert p["OUSStatusRef"]["entityId"] == "uid://A001/X3f01/X1a5"
    assert p["ObsUnitSetRef"]["partId"] == "X1573098450"
    assert p["RelativePath"] == REL
    assert p["ProcedureTitle"] == "hifa_restoredata"
    assert p["commands"][0]["command"] == "hifa_restoredata"
    assert [a["ExecBlockId"] for a in p["asdms"]] == [EB1, EB2]
    assert sessions_of(p) == {D1: "session_1", D2: "session_2"}


def test_empty_session_keeps_numbering():
    p = parse([[EB1], [], [EB2]])
    assert sessions_of(p) == {D1: "session_1", D2: "session_3"}
    assert [s for s, _ in p["sessions"]] == ["session_1", "session_2", "session_3"]


def test_empty_first_session():
    p = parse([[], [EB1, EB2]])
    assert sessions_of(p) == {D1: "session_2", D2: "session_2"}


def test_gap_stops_session_parsing_silently():
    text = build_ppr("uid://A001/X3f01/X1a5", REL, [(EB1, D1), (EB2, D2)], [[EB1], [EB2], [EB2]])
    text = text.replace("<ns2:Keyword>SESSION_2</ns2:Keyword>", "<ns2:Keyword>OTHER</ns2:Keyword>")
    p = ppr.parse_text(text)
    assert [s for s, _ in p["sessions"]] == ["session_1"]
    assert sessions_of(p) == {D1: "session_1", D2: "session_1"}  # SESSION_3 ignored, default session_1


def test_missing_session_1_puts_everything_in_session_1():
    p = parse([[EB1], [EB2]], session_keyword="SESSION_%d0")  # SESSION_10, SESSION_20
    assert p["sessions"] == []
    assert sessions_of(p) == {D1: "session_1", D2: "session_1"}


def test_both_uid_forms_match():
    p = parse([[EB1], ["uid___A002_Xb1f3c4_X1"]])
    assert sessions_of(p) == {D1: "session_1", D2: "session_2"}


def test_separator_needs_spaces():
    p = parse([[], [EB1, EB2]], session_sep="|")
    assert sessions_of(p) == {D1: "session_1", D2: "session_1"}


def test_eb_in_two_sessions_takes_lower_number():
    p = parse([[EB2], [EB1, EB2]])
    assert sessions_of(p) == {D1: "session_2", D2: "session_1"}


def test_ms_suffixes_are_stripped_but_not_asdm_sdm():
    p = parse([[], [EB1, EB2]], asdms=((EB1, D1 + ".ms"), (EB2, D2 + ".asdm.sdm")))
    assert sessions_of(p) == {D1 + ".ms": "session_2", D2 + ".asdm.sdm": "session_1"}
    p = parse([[], [EB1]], asdms=((EB1, D1 + "_targets.ms"),))
    assert p["asdms"][0]["session"] == "session_2"


def test_whitespace_in_session_value_breaks_matching_silently():
    text = build_ppr("uid://A001/X3f01/X1a5", REL, [(EB1, D1)], [[], [EB1]])
    text = text.replace("<ns2:Value>%s</ns2:Value>" % EB1, "<ns2:Value>\n  %s\n</ns2:Value>" % EB1)
    assert ppr.parse_text(text)["asdms"][0]["session"] == "session_1"


def test_asdm_identifier_without_execblockid_drops_it_and_later_ones():
    text = build_ppr("uid://A001/X3f01/X1a5", REL, [(EB1, D1), (EB2, D2), (EB3, D3)], [[EB1, EB2, EB3]])
    text = text.replace("<ns2:AsdmRef><val:ExecBlockId>%s</val:ExecBlockId></ns2:AsdmRef>" % EB2, "")
    assert [a["AsdmDiskName"] for a in ppr.parse_text(text)["asdms"]] == [D1]


def test_first_asdm_without_execblockid_is_empty_list():
    text = build_ppr("uid://A001/X3f01/X1a5", REL, [(EB1, D1)], [[EB1]])
    text = text.replace("<ns2:AsdmRef><val:ExecBlockId>%s</val:ExecBlockId></ns2:AsdmRef>" % EB1, "")
    with pytest.raises(ppr.PPRError, match="Empty ASDM list"):
        ppr.parse_text(text)


def test_intents_without_keyword_hides_later_intents():
    text = build_ppr("uid://A001/X3f01/X1a5", REL, [(EB1, D1)], [[], [EB1]])
    text = text.replace("<ns2:Keyword>INTERFEROMETRY_STANDARD_OBSERVING_MODE</ns2:Keyword>", "")
    p = ppr.parse_text(text)
    assert p["intents"] == {}
    assert p["asdms"][0]["session"] == "session_1"


def test_two_schedblock_identifiers_abort():
    text = build_ppr("uid://A001/X3f01/X1a5", REL, [(EB1, D1)], [[EB1]])
    i = text.index("<ns2:SchedBlockIdentifier>")
    j = text.index("</ns2:SchedBlockIdentifier>") + len("</ns2:SchedBlockIdentifier>")
    text = text[:j] + text[i:j] + text[j:]
    with pytest.raises(ppr.PPRError, match="No valid scheduling block sets"):
        ppr.parse_text(text)


def test_two_schedblock_sets_abort():
    text = build_ppr("uid://A001/X3f01/X1a5", REL, [(EB1, D1)], [[EB1]])
    i = text.index("<ns2:SchedBlockSet>")
    j = text.index("</ns2:SchedBlockSet>") + len("</ns2:SchedBlockSet>")
    text = text[:j] + text[i:j] + text[j:]
    with pytest.raises(ppr.PPRError, match="No valid processing requests"):
        ppr.parse_text(text)


@pytest.mark.parametrize("element", ["ProposalCode", "RelativePath", "Telescope"])
def test_missing_required_element_aborts(element):
    text = build_ppr("uid://A001/X3f01/X1a5", REL, [(EB1, D1)], [[EB1]])
    i = text.index("<ns2:%s>" % element)
    j = text.index("</ns2:%s>" % element) + len("</ns2:%s>" % element)
    with pytest.raises(ppr.PPRError, match=element):
        ppr.parse_text(text[:i] + text[j:])


def test_numeric_session_value_is_rejected():
    text = build_ppr("uid://A001/X3f01/X1a5", REL, [(EB1, D1)], [["1234"]])
    with pytest.raises(ppr.PPRError, match="SESSION_1"):
        ppr.parse_text(text)


def test_undeclared_prefix_is_an_error():
    text = build_ppr("uid://A001/X3f01/X1a5", REL, [(EB1, D1)], [[EB1]])
    text = text.replace('xmlns:val="Alma/ValueTypes" ', "")
    with pytest.raises(ppr.PPRError, match="well-formed"):
        ppr.parse_text(text)


def test_leaf_with_child_element_is_rejected():
    text = build_ppr("uid://A001/X3f01/X1a5", REL, [(EB1, D1)], [[EB1]])
    text = text.replace("<ns2:AsdmDiskName>%s</ns2:AsdmDiskName>" % D1,
                        "<ns2:AsdmDiskName>%s<ns2:x/></ns2:AsdmDiskName>" % D1)
    with pytest.raises(ppr.PPRError, match="AsdmDiskName"):
        ppr.parse_text(text)


def test_value_casting():
    assert ppr.cast("TRUE") is True and ppr.cast("false") is False
    assert ppr.cast("12") == 12 and ppr.cast("1.5") == 1.5
    assert ppr.cast("['a', 'b']") == ["a", "b"]
    assert ppr.cast("uid___A002_X1_X1") == "uid___A002_X1_X1"


def test_directories_follow_scipipe_rootdir():
    p = parse([[EB1]])
    w, r, prod = ppr.directories(p, cwd="/x/y/working", environ={"SCIPIPE_ROOTDIR": "/root"})
    assert (w, r, prod) == ("/root/%s/working" % REL, "/root/%s/rawdata" % REL, "/root/%s/products" % REL)
    w, r, prod = ppr.directories(p, cwd="/x/y/working", environ={})
    assert (w, r, prod) == ("/x/y/working", "/x/y/rawdata", "/x/y/products")

"""calapply.txt parsing, intent translation and gaintable re-rooting (alma-restore.md §5.3, casa-offline.md)."""
import pytest

import calapply

FULL = ("applycal(vis='/lustre/p/working/uid___A002_X1_X1.ms', field='J1', intent='PHASE,BANDPASS', spw='0,1', "
        "antenna='*&*', gaintable=['/lustre/p/working/a.bcal.tbl', '/lustre/p/working/b.gpcal.tbl'], "
        "gainfield=['', 'J1'], spwmap=[[], [0, 0]], interp=['linear,linear', 'linear'], calwt=[False, True])")
OLD = ("applycal(vis='uid___A002_X1_X1.ms', field='T', spw='0', antenna='', gaintable='/old/path/c.tbl', "
       "gainfield='P', spwmap=[], interp='linear')")


def test_full_line():
    kw = calapply.prepare(calapply.parse_line(FULL), "/w/new.ms", "/w")
    assert kw["vis"] == "/w/new.ms"
    assert kw["gaintable"] == ["/w/a.bcal.tbl", "/w/b.gpcal.tbl"]
    assert kw["intent"] == "*CALIBRATE_PHASE*,*CALIBRATE_BANDPASS*"
    assert kw["gainfield"] == ["", "J1"] and kw["spwmap"] == [[], [0, 0]]
    assert kw["calwt"] == [False, True]
    assert kw["applymode"] == "calflagstrict" and kw["flagbackup"] is False


def test_scalars_and_old_pipeline_without_intent_or_calwt():
    kw = calapply.prepare(calapply.parse_line(OLD), "/w/x.ms", "/w")
    assert kw["gaintable"] == ["/w/c.tbl"] and kw["gainfield"] == ["P"] and kw["interp"] == ["linear"]
    assert "intent" not in kw and "calwt" not in kw


@pytest.mark.parametrize("short,casa", sorted(calapply.INTENT_MAP.items()))
def test_every_short_intent_translates(short, casa):
    assert calapply.translate_intent(short) == "*%s*" % casa


def test_intent_translation_edge_cases():
    assert calapply.translate_intent("") == ""
    assert calapply.translate_intent("TARGET, CHECK") == "*OBSERVE_TARGET*,*OBSERVE_CHECK_SOURCE*"
    assert calapply.translate_intent("CALIBRATE_PHASE#ON_SOURCE") == "CALIBRATE_PHASE#ON_SOURCE"
    with pytest.raises(calapply.CalApplyError, match="unknown intent"):
        calapply.translate_intent("NOSUCH")


def test_file_only_uses_applycal_lines():
    text = "# Apply file for uid___A002_X1_X1.ms\n\n# applycal(vis='x')\n" + FULL + "\n  applycal(vis='y')\n" + OLD
    calls = calapply.parse(text)
    assert len(calls) == 2
    assert calapply.header_vis(text) == "uid___A002_X1_X1.ms"


@pytest.mark.parametrize("line,msg", [
    ("applycal(vis=open('/etc/passwd'))", "not a literal"),
    ("applycal('x.ms')", "positional"),
    ("applycal(**{'vis': 'x'})", r"\*\*kwargs"),
    ("os.system('rm -rf /')", "not an applycal"),
    ("applycal(vis='x', nosuch=1)", "unsupported"),
    ("applycal(vis='x'", "not a Python call"),
])
def test_rejects_non_literal_or_foreign_calls(line, msg):
    with pytest.raises(calapply.CalApplyError, match=msg):
        calapply.parse_line(line)


def test_error_names_the_line():
    with pytest.raises(calapply.CalApplyError, match="line 3"):
        calapply.parse("# Apply file for x.ms\n" + OLD + "\napplycal(vis=x)\n")

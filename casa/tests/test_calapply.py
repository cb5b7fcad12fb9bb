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
    assert kw["applymode"] == "calflagstrict" and kw["flagbackup"] is False and kw["parang"] is False


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


# --- hifa_restoredata's applycal settings: flagbackup, parang for hifa_polcal tables (PIPE-1973) ---------------

POLCAL_SESSION = ("applycal(vis='/p/working/uid___A002_X1_X1.ms', field='', intent='TARGET,PHASE,POLARIZATION', "
                  "spw='0', antenna='*&*', gaintable=['/p/working/uid___A002_X1_X1.ms.hifa_timegaincal.s16_3.tbl', "
                  "'/p/working/session_1_polcalib.ms.hifa_polcal.s18_5.session_1.kcross.tbl', "
                  "'/p/working/session_1_polcalib.ms.hifa_polcal.s18_9.session_1.xyf0.tbl/'], "
                  "gainfield=['', '', ''], spwmap=[[], [], []], interp=['linear', '', ''], calwt=[True, False, False])")
RENORM = ("applycal(vis='/p/working/uid___A002_X1_X2.ms', field='', intent='TARGET', spw='0', antenna='*&*', "
          "gaintable=['/p/working/uid___A002_X1_X2.ms.hifa_renorm.s15_1.renorm.tbl'], gainfield=[''], spwmap=[[]], "
          "interp=['nearest'], calwt=[False])")


def test_polcal_table_sets_parang_for_the_file():
    text = "# Apply file for uid___A002_X1_X1.ms\n" + FULL.replace("uid___A002_X1_X1", "uid___A002_X1_X1") + "\n" + POLCAL_SESSION + "\n"
    calls = calapply.prepare_file(text, "/w/uid___A002_X1_X1.ms", "/w")
    assert [kw["parang"] for kw in calls] == [True, True]
    # session-named polcal tables re-rooted into the working directory by basename, trailing slash dropped
    assert calls[1]["gaintable"][1:] == ["/w/session_1_polcalib.ms.hifa_polcal.s18_5.session_1.kcross.tbl",
                                         "/w/session_1_polcalib.ms.hifa_polcal.s18_9.session_1.xyf0.tbl"]
    assert calls[1]["intent"] == "*OBSERVE_TARGET*,*CALIBRATE_PHASE*,*CALIBRATE_POLARIZATION*"


def test_without_polcal_parang_false_even_if_the_line_says_true():
    line = OLD[:-1] + ", parang=True)"
    calls = calapply.prepare_file(line + "\n", "/w/x.ms", "/w")
    assert calls[0]["parang"] is False


def test_parang_decision_is_for_the_whole_restore():
    plain = calapply.parse(FULL + "\n")
    pol = calapply.parse(POLCAL_SESSION + "\n")
    assert calapply.parang_for({"a.ms": plain, "b.ms": pol}) is True
    assert calapply.parang_for({"a.ms": plain}) is False
    assert calapply.parang_for({}) is False
    # ".hifa_polcal." must be in the table name, not merely in a directory of the original path
    odd = calapply.parse(FULL.replace("/lustre/p/working/a.bcal.tbl", "/x.hifa_polcal.d/a.bcal.tbl") + "\n")
    assert calapply.uses_polcal(odd) is False


def test_flagbackup_once_per_ms_like_the_pipeline():
    text = "\n".join([FULL, OLD, FULL]) + "\n"
    calls = calapply.prepare_file(text, "/w/x.ms", "/w")
    assert [kw["flagbackup"] for kw in calls] == [True, False, False]


def test_pl2024_renorm_table_is_an_ordinary_caltable():
    calls = calapply.prepare_file(RENORM + "\n", "/w/uid___A002_X1_X2.ms", "/w")
    assert calls[0]["gaintable"] == ["/w/uid___A002_X1_X2.ms.hifa_renorm.s15_1.renorm.tbl"]
    assert calls[0]["parang"] is False

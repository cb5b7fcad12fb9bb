"""Manifest selection and lookups as hifa_restoredata does them (alma-restore.md §5.2, §6)."""
import os

import pytest

import manifest

XML = """<?xml version="1.0" ?>
<piperesults name="uid___A001_X1_X2">
  <ous name="uid___A001_X1_X2">
    <casaversion name="6.5.4.9"/>
    <session name="session_2">
      <caltables name="uid___A001_X1_X2.session_2.caltables.tgz" datatype="caltables" format="tgz"/>
      <asdm name="uid___A002_X1_X1.ms">
        <finalflags name="uid___A002_X1_X1.ms.flagversions.tgz"/>
        <applycmds name="uid___A002_X1_X1.ms.calapply.txt"/>
      </asdm>
    </session>
    <session name="session_3">
      <asdm name="uid___A002_X1_X3.ms"><finalflags name="f3.tgz"/></asdm>
    </session>
  </ous>
</piperesults>
"""


def write(d, name, text=XML):
    with open(os.path.join(d, name), "w") as f:
        f.write(text)
    return os.path.join(d, name)


def test_lookups(tmp_path):
    m = manifest.Manifest(write(tmp_path, "a.pipeline_manifest.xml"))
    assert m.caltables_for("session_2") == "uid___A001_X1_X2.session_2.caltables.tgz"
    assert m.finalflags_for("uid___A002_X1_X1.ms") == "uid___A002_X1_X1.ms.flagversions.tgz"
    assert m.applycmds_for("uid___A002_X1_X1.ms") == "uid___A002_X1_X1.ms.calapply.txt"
    assert m.values["casaversion"] == "6.5.4.9"
    with pytest.raises(manifest.ManifestError, match="manifest has no caltables for session_3"):
        m.caltables_for("session_3")
    with pytest.raises(manifest.ManifestError, match="no caltables for session_1"):
        m.caltables_for("session_1")
    with pytest.raises(manifest.ManifestError, match="no applycmds for uid___A002_X1_X3.ms"):
        m.applycmds_for("uid___A002_X1_X3.ms")
    assert m.listed_files() == ["f3.tgz", "uid___A001_X1_X2.session_2.caltables.tgz",
                                "uid___A002_X1_X1.ms.calapply.txt", "uid___A002_X1_X1.ms.flagversions.tgz"]


def test_default_caltables_key(tmp_path):
    text = XML.replace('<session name="session_2">', '<session name="default">')
    m = manifest.Manifest(write(tmp_path, "a.pipeline_manifest.xml", text))
    assert m.caltables_for("session_7") == "uid___A001_X1_X2.session_2.caltables.tgz"


def test_selection_prefers_cal_then_sorted(tmp_path):
    assert manifest.select(str(tmp_path)) is None
    write(tmp_path, "b.hifa_image.pipeline_manifest.xml")
    assert manifest.select(str(tmp_path)).endswith("b.hifa_image.pipeline_manifest.xml")
    write(tmp_path, "z.hifa_calimage.pipeline_manifest.xml")
    write(tmp_path, "y.hifa_cal.pipeline_manifest.xml")
    assert manifest.select(str(tmp_path)).endswith("y.hifa_cal.pipeline_manifest.xml")
    assert manifest.select(str(tmp_path / "missing")) is None


def test_unreadable_manifest(tmp_path):
    with pytest.raises(manifest.ManifestError, match="cannot read manifest"):
        manifest.Manifest(write(tmp_path, "x.pipeline_manifest.xml", "<piperesults>"))


# --- restore-time actions the modular restore refuses (restoredata._do_renormalize, selfcal, unknown) ----------

RENORM_XML = XML.replace(
    '<applycmds name="uid___A002_X1_X1.ms.calapply.txt"/>',
    '<applycmds name="uid___A002_X1_X1.ms.calapply.txt"/>\n'
    '        <hifa_renorm apply="True" threshold="1.02" spw="17,19" excludechan="{}" correctATM="True"/>')


def test_pl2024_manifest_has_no_unsupported_action(tmp_path):
    assert manifest.Manifest(write(tmp_path, "a.pipeline_manifest.xml")).unsupported_restore_actions() == []


def test_hifa_renorm_is_unsupported(tmp_path):
    m = manifest.Manifest(write(tmp_path, "a.pipeline_manifest.xml", RENORM_XML))
    assert m.renorm["uid___A002_X1_X1.ms"]["threshold"] == "1.02"
    assert m.unsupported_restore_actions() == [
        "hifa_renorm for uid___A002_X1_X1.ms (renormalisation at restore time, PL2022-2023)"]


def test_selfcal_and_unknown_asdm_children_are_unsupported(tmp_path):
    text = XML.replace('<casaversion name="6.5.4.9"/>', '<casaversion name="6.5.4.9"/><selfcal_resources name="x.tgz"/>')
    text = text.replace('<finalflags name="f3.tgz"/>', '<finalflags name="f3.tgz"/><hifa_future step="1"/>')
    m = manifest.Manifest(write(tmp_path, "a.pipeline_manifest.xml", text))
    assert m.unsupported_restore_actions() == [
        "selfcal resource <selfcal_resources>", 'unknown <hifa_future> in <asdm name="uid___A002_X1_X3.ms">']


def test_finalms_and_image_children_are_harmless(tmp_path):
    text = XML.replace('<finalflags name="f3.tgz"/>', '<finalflags name="f3.tgz"/><finalms name="x.ms"/><image name="i" imtype="t"/>')
    assert manifest.Manifest(write(tmp_path, "a.pipeline_manifest.xml", text)).unsupported_restore_actions() == []

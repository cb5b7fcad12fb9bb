"""pipeline_manifest.xml reading and selection as hifa_restoredata does it (alma-restore.md §5.2, §6). No CASA."""
import fnmatch
import os
import xml.etree.ElementTree as ET


class ManifestError(ValueError):
    """The manifest cannot drive a restore; the message says why (one line)."""


def _local(tag):
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def select(rawdata_dir):
    """The manifest hifa_restoredata would use: all *pipeline_manifest.xml in rawdata; if more than one,
    prefer *cal*pipeline_manifest.xml; first in sorted order. None if there is none."""
    try:
        names = sorted(n for n in os.listdir(rawdata_dir) if fnmatch.fnmatch(n, "*pipeline_manifest.xml"))
    except FileNotFoundError:
        return None
    if len(names) > 1:
        cal = [n for n in names if fnmatch.fnmatch(n, "*cal*pipeline_manifest.xml")]
        if cal:
            names = cal
    return os.path.join(rawdata_dir, names[0]) if names else None


# <asdm> children hifa_restoredata reads or that carry no restore-time action (manifest.py add_asdm,
# add_asdm_imlist); hifa_renorm is read and acted on (restoredata._do_renormalize).
KNOWN_ASDM_CHILDREN = ("finalflags", "applycmds", "finalms", "image")


class Manifest:
    """The first <ous> of a manifest: per-session caltables, per-asdm finalflags/applycmds, versions."""

    def __init__(self, path):
        self.path = path
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError) as e:
            raise ManifestError("cannot read manifest %s: %s" % (os.path.basename(path), e))
        ous = next((e for e in root.iter() if _local(e.tag) == "ous"), None)
        if ous is None:
            raise ManifestError("manifest %s has no ous element" % os.path.basename(path))
        self.ous_name = ous.get("name", "")
        self.caltables = {}      # session name -> caltables file
        self.finalflags = {}     # asdm (MS basename) -> flagversions tgz
        self.applycmds = {}      # asdm (MS basename) -> calapply txt
        self.asdm_session = {}   # asdm -> session name in the manifest
        self.values = {}
        self.renorm = {}                 # asdm -> hifa_renorm attributes (PL2022-2023: renormalised at restore)
        self.unknown_asdm_children = []  # (asdm, element) an <asdm> holds that hifa_restoredata might act on
        self.selfcal = []                # elements naming selfcal resources
        for el in ous:
            tag = _local(el.tag)
            if tag in ("casaversion", "pipeline_version", "procedure_name", "aux_products_file", "restorescript"):
                self.values[tag] = el.get("name")
            elif tag == "session":
                sname = el.get("name", "")
                for s in el:
                    stag = _local(s.tag)
                    if stag == "caltables":
                        self.caltables[sname] = s.get("name")
                    elif stag == "asdm":
                        aname = s.get("name", "")
                        self.asdm_session[aname] = sname
                        for a in s:
                            atag = _local(a.tag)
                            if atag == "finalflags":
                                self.finalflags[aname] = a.get("name")
                            elif atag == "applycmds":
                                self.applycmds[aname] = a.get("name")
                            elif atag == "hifa_renorm":
                                self.renorm[aname] = dict(a.attrib)
                            elif atag not in KNOWN_ASDM_CHILDREN:
                                self.unknown_asdm_children.append((aname, atag))
                    elif "selfcal" in stag.lower():
                        self.selfcal.append(stag)
            elif "selfcal" in tag.lower():
                self.selfcal.append(tag)

    def unsupported_restore_actions(self):
        """What hifa_restoredata would do at restore time beyond import/flags/applycal, which this program does
        not reproduce: hifa_renorm (PL2022-2023 renormalisation run by _do_renormalize), selfcal resources,
        <asdm> children of unknown meaning. Empty for PL2024+ manifests (renormalisation is then a caltable)."""
        out = ["hifa_renorm for %s (renormalisation at restore time, PL2022-2023)" % a for a in sorted(self.renorm)]
        out += ["selfcal resource <%s>" % t for t in self.selfcal]
        out += ["unknown <%s> in <asdm name=\"%s\">" % (t, a) for a, t in self.unknown_asdm_children]
        return out

    def caltables_for(self, session):
        """hifa_restoredata's lookup: the session's caltables, else the 'default' key."""
        if session in self.caltables and self.caltables[session]:
            return self.caltables[session]
        if self.caltables.get("default"):
            return self.caltables["default"]
        raise ManifestError("manifest has no caltables for %s" % session)

    def finalflags_for(self, vis):
        if not self.finalflags.get(vis):
            raise ManifestError("manifest has no finalflags for %s" % vis)
        return self.finalflags[vis]

    def applycmds_for(self, vis):
        if not self.applycmds.get(vis):
            raise ManifestError("manifest has no applycmds for %s" % vis)
        return self.applycmds[vis]

    def listed_files(self):
        """Every finalflags, caltables and applycmds file the manifest names (what copytoraw copies)."""
        files = set(v for v in self.caltables.values() if v)
        files |= set(v for v in self.finalflags.values() if v)
        files |= set(v for v in self.applycmds.values() if v)
        return sorted(files)

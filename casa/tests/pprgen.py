"""A tiny restore-PPR writer for the tests (the agent's real writer is Swift). Follows alma-restore.md §3."""
from xml.sax.saxutils import escape, quoteattr


def sanitize(uid):
    return uid.replace(":", "_").replace("/", "_")


def build_ppr(mous, relative_path, asdms, sessions, project="2023.1.00042.S", obs_project="uid://A001/X3f01/X1a0",
              part_id="X1573098450", project_status="uid://A001/X3f01/X1a1", sb_uid="uid://A001/X3f01/X1a6",
              sb_status="uid://A001/X3f01/X1a7", title="Synthetic demo MOUS", procedure="hifa_restoredata",
              commands=None, session_keyword="SESSION_%d", extra_intents=(), session_sep=" | "):
    """asdms: [(exec block uid, AsdmDiskName)]; sessions: list of lists of EB uids, index 0 = SESSION_1
    (use [] for an empty session). commands: [(command, {keyword: value})]."""
    if commands is None:
        commands = [("hifa_restoredata", {"ocorr_mode": "ca"})]
    intents = [("INTERFEROMETRY_STANDARD_OBSERVING_MODE", "Undefined")]
    for n, members in enumerate(sessions, 1):
        intents.append((session_keyword % n, session_sep.join(members)))
    intents += list(extra_intents)
    x = []
    a = x.append
    a('<?xml version="1.0" encoding="UTF-8"?>')
    a('<ns2:SciPipeRequest xmlns:ns2="Alma/pipelinescience/SciPipeRequest" xmlns:prj="Alma/ObsPrep/ObsProject" '
      'xmlns:ps="Alma/Scheduling/ProjectStatus" xmlns:ous="Alma/Scheduling/OUSStatus" '
      'xmlns:sb="Alma/ObsPrep/SchedBlock" xmlns:sbs="Alma/Scheduling/SBStatus" xmlns:val="Alma/ValueTypes" '
      'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="ns2:SciPipeRequest">')
    a('<ns2:SciPipeRequestEntity entityId="uid://A001/X3f01/X1a8" entityTypeName="SciPipeRequest" '
      'datamodelVersion="1.0"/>')
    a("<ns2:ProjectSummary><ns2:ProposalCode>%s</ns2:ProposalCode><ns2:Observatory>ALMA</ns2:Observatory>"
      "<ns2:Telescope>ALMA</ns2:Telescope><ns2:ProcessingSite>Test</ns2:ProcessingSite>"
      "<ns2:Operator>dropbox-agent</ns2:Operator><ns2:Mode>SCIENCE</ns2:Mode><ns2:Version>1.0</ns2:Version>"
      "<ns2:CreationTime>2024-09-02T00:00:00</ns2:CreationTime></ns2:ProjectSummary>" % escape(project))
    a("<ns2:ProjectStructure><ns2:AlmaStructure>")
    a('<prj:ObsUnitSetRef entityId=%s partId=%s entityTypeName="ObsProject"/>' % (quoteattr(obs_project),
                                                                                 quoteattr(part_id)))
    a("<ns2:ObsUnitSetTitle>%s</ns2:ObsUnitSetTitle><ns2:ObsUnitSetType>Member</ns2:ObsUnitSetType>" % escape(title))
    a('<ps:ProjectStatusRef entityId=%s entityTypeName="ProjectStatus"/>' % quoteattr(project_status))
    a('<ous:OUSStatusRef entityId=%s entityTypeName="OUSStatus"/>' % quoteattr(mous))
    a("</ns2:AlmaStructure></ns2:ProjectStructure>")
    a("<ns2:ProcessingRequests><ns2:ProcessingRequest><ns2:ProcessingIntents>")
    for k, v in intents:
        a("<ns2:Intents><ns2:Keyword>%s</ns2:Keyword><ns2:Value>%s</ns2:Value></ns2:Intents>" % (escape(k), escape(v)))
    a("</ns2:ProcessingIntents><ns2:ProcessingProcedure><ns2:ProcedureTitle>%s</ns2:ProcedureTitle>" % escape(procedure))
    for cmd, params in commands:
        a("<ns2:ProcessingCommand><ns2:Command>%s</ns2:Command><ns2:ParameterSet>" % escape(cmd))
        for k, v in params.items():
            a("<ns2:Parameter><ns2:Keyword>%s</ns2:Keyword><ns2:Value>%s</ns2:Value></ns2:Parameter>"
              % (escape(k), escape(str(v))))
        a("</ns2:ParameterSet></ns2:ProcessingCommand>")
    a("</ns2:ProcessingProcedure><ns2:DataSet><ns2:SchedBlockSet><ns2:SchedBlockIdentifier>")
    a("<ns2:RelativePath>%s</ns2:RelativePath>" % escape(relative_path))
    a('<sb:SchedBlockRef entityId=%s entityTypeName="SchedBlock" documentVersion="1"/>' % quoteattr(sb_uid))
    a('<sbs:SBStatusRef entityId=%s entityTypeName="SBStatus" documentVersion="1"/>' % quoteattr(sb_status))
    a("<ns2:SBTitle>Demo_a_03_TM1</ns2:SBTitle>")
    for eb, disk in asdms:
        a("<ns2:AsdmIdentifier><ns2:AsdmRef><val:ExecBlockId>%s</val:ExecBlockId></ns2:AsdmRef>"
          "<ns2:AsdmDiskName>%s</ns2:AsdmDiskName></ns2:AsdmIdentifier>" % (escape(eb), escape(disk)))
    a("</ns2:SchedBlockIdentifier></ns2:SchedBlockSet></ns2:DataSet></ns2:ProcessingRequest></ns2:ProcessingRequests>")
    a("<ns2:ResultsProcessing><ns2:ArchiveResults>false</ns2:ArchiveResults><ns2:CleanUpDisk>false</ns2:CleanUpDisk>"
      "<ns2:UpdateProjectLifeCycle>false</ns2:UpdateProjectLifeCycle>"
      "<ns2:NotifyOperatorWhenDone>false</ns2:NotifyOperatorWhenDone>"
      "<ns2:PipelineOperatorAdress>nobody@example.org</ns2:PipelineOperatorAdress></ns2:ResultsProcessing>")
    a("</ns2:SciPipeRequest>")
    return "\n".join(x) + "\n"

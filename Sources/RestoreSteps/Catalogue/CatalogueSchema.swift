/// The embedded catalogue's tables: a small subset of the ALMA archive tables the restore queries use, with
/// ALMA's table and column names (brief §1, §4, §8), so the queries read like the real ones and a site can
/// point the same SQL at its own copy. Columns marked "agent" are additions the real tables do not have (or
/// that we could not confirm); docs/catalog-format.md lists them.
enum CatalogueSchema {
    static let version = 2

    /// Brings a catalogue of an older schema version up to ``version`` (run before ``ddl``, in one transaction).
    static func migrations(from old: Int) -> [String] {
        var steps: [String] = []
        if old >= 1, old < 2 { steps.append("ALTER TABLE SCHED_BLOCK_STATUS ADD COLUMN DOMAIN_ENTITY_STATE TEXT") }
        return steps
    }

    static let ddl = """
        CREATE TABLE IF NOT EXISTS ASA_PROJECT (
            CODE TEXT PRIMARY KEY,                         -- 2017.1.00886.L
            PROJECT_UID TEXT NOT NULL                      -- ObsProject uid
        );
        CREATE TABLE IF NOT EXISTS OBS_UNIT_SET_STATUS (  -- one row per OUS status: MOUS, and its SOUS and GOUS
            STATUS_ENTITY_ID TEXT PRIMARY KEY,             -- OUSStatus uid
            DOMAIN_ENTITY_ID TEXT,                         -- ObsUnitSet part id in the ObsProject (MOUS rows)
            PARENT_OBS_UNIT_SET_STATUS_ID TEXT,            -- MOUS -> SOUS -> GOUS
            OBS_PROJECT_STATUS_ID TEXT,                    -- ProjectStatus uid
            OBS_PROJECT_ID TEXT,                           -- ObsProject uid
            XML TEXT                                       -- the OUSStatus document (sessions authority), may be NULL
        );
        CREATE TABLE IF NOT EXISTS AQUA_OUS (             -- one row per imported MOUS
            OUS_STATUS_ENTITY_ID TEXT PRIMARY KEY,
            OBSUNITSETUID TEXT NOT NULL,                   -- joins OBS_UNIT_SET_STATUS.OBS_PROJECT_ID
            OBSUNITSETPARTID TEXT NOT NULL,                -- joins OBS_UNIT_SET_STATUS.DOMAIN_ENTITY_ID
            PROJECT_CODE TEXT NOT NULL REFERENCES ASA_PROJECT(CODE),  -- agent
            OUS_TITLE TEXT NOT NULL,                       -- agent (ALMA keeps it in the ObsProject document)
            IMPORTED_AT TEXT NOT NULL                      -- agent
        );
        CREATE TABLE IF NOT EXISTS SCHED_BLOCK_STATUS (
            STATUS_ENTITY_ID TEXT PRIMARY KEY,             -- SBStatus uid
            DOMAIN_ENTITY_ID TEXT NOT NULL UNIQUE,         -- SchedBlock uid
            PARENT_OBS_UNIT_SET_STATUS_ID TEXT NOT NULL,   -- MOUS status uid
            DOMAIN_ENTITY_STATE TEXT                       -- FullyObserved, Canceled, ...; NULL = unknown (schema 2)
        );
        CREATE INDEX IF NOT EXISTS SBS_PARENT ON SCHED_BLOCK_STATUS(PARENT_OBS_UNIT_SET_STATUS_ID);
        CREATE TABLE IF NOT EXISTS BMMV_SCHEDBLOCK (
            ARCHIVE_UID TEXT PRIMARY KEY,                  -- SchedBlock uid
            NAME TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS AQUA_SESSION (
            SESSIONID TEXT PRIMARY KEY,
            STARTTIME TEXT,
            ENDTIME TEXT,                                  -- may be NULL
            OUS_STATUS_ENTITY_ID TEXT NOT NULL             -- agent: keeps sessions without EBs attached to their MOUS
        );
        CREATE TABLE IF NOT EXISTS AQUA_EXECBLOCK (
            EXECBLOCKUID TEXT PRIMARY KEY,
            QA0STATUS TEXT NOT NULL,                       -- Pass, SemiPass, Fail, Unset, Pending
            SESSIONID TEXT,                                -- AQUA_SESSION.SESSIONID
            STARTTIME TEXT,
            ENDTIME TEXT
        );
        CREATE TABLE IF NOT EXISTS SHIFTLOG_ENTRIES (
            SE_ID INTEGER PRIMARY KEY,
            SE_EB_UID TEXT NOT NULL UNIQUE,                -- AQUA_EXECBLOCK.EXECBLOCKUID
            SE_SB_ID TEXT NOT NULL,                        -- SCHED_BLOCK_STATUS.DOMAIN_ENTITY_ID
            SE_QA0FLAG TEXT,                               -- copy of the QA0 status
            SE_STARTTIME TEXT,
            SE_ENDTIME TEXT
        );
        CREATE INDEX IF NOT EXISTS SE_SB ON SHIFTLOG_ENTRIES(SE_SB_ID);
        CREATE TABLE IF NOT EXISTS ASA_SCIENCE (           -- EB membership as the archive's science table has it
            ASDM_UID TEXT NOT NULL,
            MEMBER_OUSS_ID TEXT NOT NULL,
            GROUP_OUSS_ID TEXT,
            PROJECT_CODE TEXT,
            SCHEDBLOCK_NAME TEXT,
            PRIMARY KEY (ASDM_UID, MEMBER_OUSS_ID)
        );
        CREATE TABLE IF NOT EXISTS ASDM_ARCHIVE_FILES (   -- agent: where each EB's ASDM lives in the archive store
            ASDM_UID TEXT PRIMARY KEY,                     -- AQUA_EXECBLOCK.EXECBLOCKUID
            NGAS_FILE_ID TEXT NOT NULL,                    -- one gzip'd tar whose top directory is the AsdmDiskName
            FILE_SIZE INTEGER NOT NULL,
            CHECKSUM TEXT,
            CHECKSUM_VARIANT TEXT
        );
        CREATE TABLE IF NOT EXISTS ASA_PRODUCT_FILES (
            ASA_OUS_ID TEXT NOT NULL,                      -- MOUS status uid
            FILE_CLASS TEXT NOT NULL,                      -- calibration, script, science, qa, log, auxiliary
            NGAS_FILE_ID TEXT NOT NULL,
            FILE_SIZE INTEGER NOT NULL,
            CHECKSUM TEXT,
            CHECKSUM_VARIANT TEXT,
            PRIMARY KEY (ASA_OUS_ID, NGAS_FILE_ID)
        );
        CREATE TABLE IF NOT EXISTS ASA_DELIVERY_STATUS (
            DELIVERY_NAME TEXT PRIMARY KEY,                -- <project>_<sanitized MOUS>, e.g. 2017.1.00886.L_uid___A001_X1284_X265f
            RELEASE_DATE TEXT                              -- 3000-01-01 halts a release
        );
        """
}

internal import Delivery
internal import FoundationEssentials
internal import Glibc

extension CatalogueImportFile {
    /// The rules beyond types: valid uids, known enumerations, parseable times, safe file ids, unique keys,
    /// session references, parseable OUSStatus XML. Returns every problem found (empty when valid).
    public func validate() -> [CatalogueImportError.Problem] {
        var problems: [CatalogueImportError.Problem] = []
        func problem(_ path: String, _ message: String) { problems.append(.init(path: path, message: message)) }
        func uid(_ value: String, _ path: String) {
            if AlmaUid(value) == nil { problem(path, "\"\(value)\" is not an ALMA uid (uid://A001/X1/X2)") }
        }
        func time(_ value: String?, _ path: String) {
            if let value, UTCTime(parsing: value) == nil {
                problem(path, "\"\(value)\" is not a UTC time (2024-03-01T10:00:00Z)")
            }
        }
        func nonEmpty(_ value: String, _ path: String) {
            if value.trimmingWhitespaceAndNewlines().isEmpty {
                problem(path, "must not be empty")
            } else if value != value.trimmingWhitespaceAndNewlines() {
                problem(path, "must not start or end with whitespace")
            }
        }
        func file(_ id: String, _ size: Int64, _ checksum: String?, _ variant: String?, _ path: String) {
            if !ArchiveFile.isSafeFileId(id) {
                problem(
                    "\(path).ngasFileId",
                    "\"\(id)\" is not a safe file id (1-255 of A-Z a-z 0-9 . _ - +, not starting with . or -)")
            }
            if size < 0 { problem("\(path).size", "must be >= 0") }
            if let checksum, Int64(checksum) == nil, UInt64(checksum) == nil {
                problem("\(path).checksum", "\"\(checksum)\" is not a decimal CRC (NGAS style)")
            }
            if let variant, ArchiveChecksumVariant(rawValue: variant) == nil {
                problem(
                    "\(path).checksumVariant",
                    "\"\(variant)\" is not one of \(ArchiveChecksumVariant.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            if checksum != nil, variant == nil { problem("\(path).checksumVariant", "required when checksum is given") }
        }

        if schema != Self.schemaId { problem("$.schema", "must be \"\(Self.schemaId)\", not \"\(schema)\"") }
        if mouses.isEmpty { problem("$.mouses", "must list at least one MOUS") }

        var mousSeen: [String: Int] = [:]
        var ebSeen: [String: String] = [:]
        var sessionSeen: [String: String] = [:]
        for (i, m) in mouses.enumerated() {
            let p = "$.mouses[\(i)]"
            uid(m.mous, "\(p).mous")
            if let first = mousSeen[m.mous] {
                problem("\(p).mous", "\(m.mous) is also $.mouses[\(first)]")
            } else {
                mousSeen[m.mous] = i
            }
            nonEmpty(m.project, "\(p).project")
            if !m.project.isEmpty, RelativePath.sanitize(m.project) != m.project || m.project.utf8.count > 64 {
                problem("\(p).project", "\"\(m.project)\" must be 1-64 of A-Z a-z 0-9 . _ - (e.g. 2017.1.00886.L)")
            } else if PPRInvariants.looksCastable(m.project) {
                problem(
                    "\(p).project", "\"\(m.project)\" looks like a number; the pipeline would read ProposalCode as one")
            }
            for (value, key) in [
                (m.obsProject, "obsProject"), (m.projectStatus, "projectStatus"), (m.sous, "sous"), (m.gous, "gous"),
            ] {
                uid(value, "\(p).\(key)")
            }
            if m.sous == m.mous || m.gous == m.mous || m.sous == m.gous {
                problem("\(p).sous", "mous, sous and gous must be three different uids")
            }
            nonEmpty(m.obsUnitSetPartId, "\(p).obsUnitSetPartId")
            if m.obsUnitSetPartId.contains(where: { $0.isWhitespace }) {
                problem("\(p).obsUnitSetPartId", "must not contain whitespace")
            }
            nonEmpty(m.title, "\(p).title")
            time(m.releaseDate, "\(p).releaseDate")
            let schedBlocks =
                [(m.schedBlock, "\(p).schedBlock")]
                + (m.otherSchedBlocks ?? []).enumerated().map { ($1, "\(p).otherSchedBlocks[\($0)]") }
            var sbSeen: Set<String> = []
            for (sb, sp) in schedBlocks {
                uid(sb.uid, "\(sp).uid")
                uid(sb.statusUid, "\(sp).statusUid")
                nonEmpty(sb.name, "\(sp).name")
                if let state = sb.state, !SchedBlockSelection.isValidState(state) {
                    problem(
                        "\(sp).state",
                        "\"\(state)\" is not a DOMAIN_ENTITY_STATE word (letters and digits, e.g. FullyObserved, Canceled)"
                    )
                }
                if !sbSeen.insert(sb.uid).inserted {
                    problem("\(sp).uid", "scheduling block \(sb.uid) is listed twice")
                }
                if !sbSeen.insert(sb.statusUid).inserted {
                    problem("\(sp).statusUid", "SBStatus \(sb.statusUid) is listed twice (or equals an SB uid)")
                }
            }
            if schedBlocks.count > 1,
                let reason = SchedBlockSelection.ambiguity(schedBlocks.map { ($0.0.uid, $0.0.state) })
            {
                problem("\(p).otherSchedBlocks", reason)
            }

            var localSessions: Set<String> = []
            for (j, s) in (m.sessions ?? []).enumerated() {
                let sp = "\(p).sessions[\(j)]"
                nonEmpty(s.id, "\(sp).id")
                if let owner = sessionSeen[s.id] {
                    problem("\(sp).id", "session \(s.id) is also listed under \(owner)")
                }
                sessionSeen[s.id] = p
                localSessions.insert(s.id)
                time(s.startTime, "\(sp).startTime")
                time(s.endTime, "\(sp).endTime")
            }

            for (j, eb) in m.execBlocks.enumerated() {
                let ep = "\(p).execBlocks[\(j)]"
                uid(eb.uid, "\(ep).uid")
                if let owner = ebSeen[eb.uid] { problem("\(ep).uid", "EB \(eb.uid) is also listed under \(owner)") }
                ebSeen[eb.uid] = p
                if QA0Status(rawValue: eb.qa0) == nil {
                    problem(
                        "\(ep).qa0",
                        "\"\(eb.qa0)\" is not one of \(QA0Status.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                if let sessionId = eb.sessionId, m.sessions != nil, !localSessions.contains(sessionId) {
                    problem("\(ep).sessionId", "session \"\(sessionId)\" is not in \(p).sessions")
                }
                time(eb.startTime, "\(ep).startTime")
                time(eb.endTime, "\(ep).endTime")
                if let asdm = eb.asdm {
                    file(asdm.ngasFileId, asdm.size, asdm.checksum, asdm.checksumVariant, "\(ep).asdm")
                }
            }

            var productSeen: Set<String> = []
            for (j, product) in m.products.enumerated() {
                let pp = "\(p).products[\(j)]"
                if FileClass(rawValue: product.fileClass) == nil {
                    problem(
                        "\(pp).fileClass",
                        "\"\(product.fileClass)\" is not one of \(FileClass.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                file(product.ngasFileId, product.size, product.checksum, product.checksumVariant, pp)
                if !productSeen.insert(product.ngasFileId).inserted {
                    problem("\(pp).ngasFileId", "\(product.ngasFileId) is listed twice")
                }
            }

            if let xml = m.ousStatusXml, !xml.trimmingWhitespaceAndNewlines().isEmpty {
                do {
                    _ = try OUSStatusSessions.read(xml)
                } catch {
                    problem("\(p).ousStatusXml", error.message)
                }
            }
        }
        return problems
    }

    /// The records of a valid file.
    ///
    /// - Throws: ``CatalogueImportError`` when ``validate()`` finds problems.
    public func records() throws(CatalogueImportError) -> [MousRecord] {
        let problems = validate()
        guard problems.isEmpty else { throw CatalogueImportError(problems: problems) }
        // Every force-unwrap below was checked by validate().
        return mouses.map { m in
            MousRecord(
                mous: AlmaUid(m.mous)!, project: m.project, obsProject: AlmaUid(m.obsProject)!,
                projectStatus: AlmaUid(m.projectStatus)!, obsUnitSetPartId: m.obsUnitSetPartId,
                sous: AlmaUid(m.sous)!, gous: AlmaUid(m.gous)!, title: m.title,
                releaseDate: m.releaseDate.flatMap(UTCTime.init(parsing:)),
                schedBlock: .init(
                    uid: AlmaUid(m.schedBlock.uid)!, name: m.schedBlock.name,
                    statusUid: AlmaUid(m.schedBlock.statusUid)!, state: m.schedBlock.state),
                sessions: (m.sessions ?? []).map {
                    .init(
                        id: $0.id, startTime: $0.startTime.flatMap(UTCTime.init(parsing:)),
                        endTime: $0.endTime.flatMap(UTCTime.init(parsing:)))
                },
                execBlocks: m.execBlocks.map { eb in
                    .init(
                        uid: AlmaUid(eb.uid)!, qa0: QA0Status(rawValue: eb.qa0)!, sessionId: eb.sessionId,
                        startTime: eb.startTime.flatMap(UTCTime.init(parsing:)),
                        endTime: eb.endTime.flatMap(UTCTime.init(parsing:)),
                        asdm: eb.asdm.map {
                            ArchiveFile(
                                ngasFileId: $0.ngasFileId, size: $0.size, checksum: $0.checksum,
                                checksumVariant: $0.checksumVariant.flatMap(ArchiveChecksumVariant.init(rawValue:)))
                        })
                },
                products: m.products.map { p in
                    .init(
                        fileClass: FileClass(rawValue: p.fileClass)!,
                        file: ArchiveFile(
                            ngasFileId: p.ngasFileId, size: p.size, checksum: p.checksum,
                            checksumVariant: p.checksumVariant.flatMap(ArchiveChecksumVariant.init(rawValue:))))
                },
                ousStatusXml: m.ousStatusXml,
                otherSchedBlocks: m.otherSchedBlocks.map { sbs in
                    sbs.map {
                        .init(uid: AlmaUid($0.uid)!, name: $0.name, statusUid: AlmaUid($0.statusUid)!, state: $0.state)
                    }
                }
            )
        }
    }

    /// The import file describing `records` (the inverse of ``records()``: `catalog show`, exports, tests).
    public init(records: [MousRecord]) {
        self.init(
            mouses: records.map { r in
                Mous(
                    mous: r.mous.rawValue, project: r.project, obsProject: r.obsProject.rawValue,
                    projectStatus: r.projectStatus.rawValue,
                    obsUnitSetPartId: r.obsUnitSetPartId, sous: r.sous.rawValue, gous: r.gous.rawValue, title: r.title,
                    releaseDate: r.releaseDate?.description,
                    schedBlock: .init(
                        uid: r.schedBlock.uid.rawValue, name: r.schedBlock.name,
                        statusUid: r.schedBlock.statusUid.rawValue, state: r.schedBlock.state),
                    sessions: r.sessions.map {
                        .init(id: $0.id, startTime: $0.startTime?.description, endTime: $0.endTime?.description)
                    },
                    execBlocks: r.execBlocks.map { eb in
                        .init(
                            uid: eb.uid.rawValue, qa0: eb.qa0.rawValue, sessionId: eb.sessionId,
                            startTime: eb.startTime?.description,
                            endTime: eb.endTime?.description,
                            asdm: eb.asdm.map {
                                .init(
                                    ngasFileId: $0.ngasFileId, size: $0.size, checksum: $0.checksum,
                                    checksumVariant: $0.checksumVariant?.rawValue)
                            })
                    },
                    products: r.products.map { p in
                        .init(
                            fileClass: p.fileClass.rawValue, ngasFileId: p.file.ngasFileId, size: p.file.size,
                            checksum: p.file.checksum, checksumVariant: p.file.checksumVariant?.rawValue)
                    },
                    ousStatusXml: r.ousStatusXml,
                    otherSchedBlocks: r.otherSchedBlocks.map { sbs in
                        sbs.map {
                            .init(
                                uid: $0.uid.rawValue, name: $0.name, statusUid: $0.statusUid.rawValue, state: $0.state)
                        }
                    }
                )
            })
    }
}

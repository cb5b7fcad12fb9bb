public import Delivery
internal import FoundationEssentials
internal import Glibc

/// Reads a download package on the local file system into ``PackageContents``: finds the MOUS's tree
/// (untarred, or by unpacking the auxiliary tar into a scratch directory of the working area), lists its
/// `calibration/` and `script/` files, parses the manifest and `pprequest.xml`, and finds every ASDM — an
/// untarred `raw/uid___….asdm.sdm` directory, or a tar whose first entries show which EB it holds.
///
/// Only regular files and directories that resolve inside the package (or the scratch directory) are used: a
/// symbolic link leading elsewhere is ignored, so a package cannot make the agent read outside its roots.
public enum PackageReader {
    /// Reads the package in `root` (already resolved and confined) for `mous`.
    ///
    /// - Parameters:
    ///   - location: what the request named, for messages.
    ///   - scratch: a directory of the working area where the auxiliary tar is unpacked when the package is not
    ///     untarred; kept between attempts (a resumed step 1 reuses it).
    ///   - remoteAsdms: for a package on a server, the raw tars found there (nil: look for local tars).
    /// - Throws: ``RestoreError``.
    public static func read(
        root: String, location: String, mous: AlmaUid, scratch: String, limits: ArchiveLimits,
        remoteAsdms: [String: AsdmSource]? = nil, projectHint: String? = nil
    ) throws(RestoreError) -> PackageContents {
        let entries = listing(root)
        let tars = entries.filter { !$0.isDirectory && isTar($0.name) }
        var notes: [String] = []

        var trees = memberTrees(in: root, depth: 4)
        var tree = trees.first { $0.mous == mous && hasProducts($0) }
        let auxiliaryTars = tars.filter {
            $0.name.hasSuffix("_auxiliary.tar") || $0.name.hasSuffix("_auxiliary.tar.gz")
        }
        if tree == nil {
            let own = auxiliaryTars.filter { $0.name.contains(mous.sanitized) }
            let chosen = own.count == 1 ? own.first : (auxiliaryTars.count == 1 ? auxiliaryTars.first : nil)
            if let chosen {
                tree = try unpackAuxiliary(root + "/" + chosen.name, mous: mous, scratch: scratch, limits: limits)
                trees += tree.map { [$0] } ?? []
            } else if auxiliaryTars.count > 1 {
                throw RestoreError(
                    .packageInconsistent,
                    "the download package \(location) holds several auxiliary tars (\(auxiliaryTars.map(\.name).joined(separator: ", "))) and none is named for MOUS \(mous)"
                )
            }
        }
        guard let tree else {
            let others = Set(trees.map(\.mous.rawValue)).sorted()
            throw RestoreError(
                .packageWrongMous,
                others.isEmpty
                    ? "the download package \(location) has no *_auxiliary.tar and no untarred member.\(mous.sanitized) folder"
                    : "the download package \(location) holds MOUS \(others.joined(separator: ", ")), not \(mous)",
                hint:
                    "A package is the folder holding the archive's tar files for the MOUS (or the tree they unpack to)."
            )
        }
        let allowedRoots = [root, LocalPaths.real(scratch) ?? scratch]
        var calibration = regularFiles(in: tree.calibration, confinedTo: allowedRoots)
        let script = regularFiles(in: tree.script, confinedTo: allowedRoots)
        // The manifest belongs in calibration/; scriptForPI also looks for it in script/ (and copies it over).
        if PipelineManifest.select(from: Array(calibration.keys)) == nil, !calibration.isEmpty,
            let name = PipelineManifest.select(from: Array(script.keys))
        {
            calibration[name] = script[name]
            notes.append("the manifest \(name) was found in script/, not calibration/")
        }

        var manifest: PackageContents.Named<PipelineManifest>?
        if let name = PipelineManifest.select(from: Array(calibration.keys)) {
            manifest = .init(name: name, document: try PipelineManifest.parse(file: calibration[name]!))
        }
        var ppr: PackageContents.Named<CalibrationPPR>?
        let pprNames = script.keys.filter { $0.hasSuffix("pprequest.xml") }.sorted()
        if let name = pprNames.first(where: { $0.contains("cal") }) ?? pprNames.first {
            do { ppr = .init(name: name, document: try CalibrationPPR.read(file: script[name]!)) } catch {
                notes.append("\(name) cannot be read (\(error.message)); defaults are used for the ProjectStructure")
            }
        }

        var asdms: [String: AsdmSource] = remoteAsdms ?? [:]
        if remoteAsdms == nil {
            for tar in tars where !auxiliaryTars.contains(tar) && !isProductTar(tar.name) {
                let path = root + "/" + tar.name
                guard let disk = asdmInTar(path) else { continue }
                asdms[disk] = AsdmSource(
                    kind: .tar, path: path, size: tar.size, incomplete: tarIncompleteness(path, size: tar.size))
            }
        }
        for directory in listing(tree.raw) where directory.isDirectory {
            let name =
                directory.name.hasSuffix(".asdm.sdm")
                ? String(directory.name.dropLast(".asdm.sdm".count)) : directory.name
            let path = tree.raw + "/" + directory.name
            guard AsdmDiskName(name) != nil, let real = LocalPaths.real(path),
                allowedRoots.contains(where: { PackageLocation.isBeneath(real, $0) })
            else { continue }
            if asdms[name] != nil {
                notes.append("\(name): the untarred \(directory.name) is used rather than its tar")
            }
            asdms[name] = AsdmSource(kind: .directory, path: real, size: FileSystemSteps.treeSize(real))
        }
        let hint =
            projectHint
            ?? auxiliaryTars.first.flatMap { name in
                name.name.firstRange(of: "_uid___").map { String(name.name[..<$0.lowerBound]) }
            }
        var contents = PackageContents(
            location: location, tree: tree, calibrationFiles: calibration, scriptFiles: script, asdms: asdms,
            manifest: manifest, calibrationPPR: ppr, projectHint: hint)
        contents.notes = notes
        return contents
    }

    /// Unpacks the auxiliary tar into `scratch` (once: a resumed step 1 finds it there) and returns the tree.
    static func unpackAuxiliary(
        _ tar: String, mous: AlmaUid, scratch: String, limits: ArchiveLimits
    ) throws(RestoreError) -> MemberTree? {
        if let existing = memberTrees(in: scratch, depth: 4).first(where: { $0.mous == mous && hasProducts($0) }) {
            return existing
        }
        FileSystemSteps.remove(scratch)
        try FileSystemSteps.createDirectory(scratch)
        // Bounded by the tar's own size: a plain tar expands to about its size, a gzip'd one by the ratio.
        var st = stat()
        let size: Int64? = stat(tar, &st) == 0 ? Int64(st.st_size) : nil
        let bounded = tar.hasSuffix(".tar") ? limits.expecting(size) : limits.expectingCompressed(size)
        do { _ = try SafeArchive.extract(tar, into: scratch, limits: bounded) } catch {
            FileSystemSteps.remove(scratch)
            throw RestoreError(
                RestoreError.Code(rawValue: error.code.rawValue),
                "cannot unpack \(PathString.lastComponent(tar)) of the download package: \(error.message)",
                hint: error.hint ?? "Download the auxiliary tar again.")
        }
        return memberTrees(in: scratch, depth: 4).first { $0.mous == mous }
    }

    /// Directories named `member.uid___…` at most `depth` levels below `root` (root itself included), not
    /// following symbolic links.
    static func memberTrees(in root: String, depth: Int) -> [MemberTree] {
        if let tree = MemberTree(path: root) { return [tree] }
        guard depth > 0 else { return [] }
        return listing(root).filter { $0.isDirectory && !$0.name.hasPrefix(".") }.flatMap { entry in
            memberTrees(in: root + "/" + entry.name, depth: depth - 1)
        }
    }

    /// The EB disk name held by a raw tar: its first entries (after the member tree's directories) lie under
    /// `uid___….asdm.sdm/` or `uid___…/`. Nil when the tar is something else or cannot be read.
    static func asdmInTar(_ path: String) -> String? {
        guard let names = try? SafeArchive.leadingEntryNames(path, limit: 12) else { return nil }
        for name in names {
            for component in name.split(separator: "/") where component.hasSuffix(".asdm.sdm") {
                let disk = String(component.dropLast(".asdm.sdm".count))
                if AsdmDiskName(disk) != nil { return disk }
            }
        }
        let tops = Set(names.compactMap { $0.split(separator: "/").first.map(String.init) })
        if tops.count == 1, let top = tops.first, AsdmDiskName(top) != nil { return top }
        return nil
    }

    /// Why an uncompressed tar cannot be complete: a tar is whole 512-byte blocks ending with two zero blocks
    /// (POSIX ustar end-of-archive marker; GNU tar and the archive's packager write it), and every member's data lies
    /// inside the file. The member headers are walked (one 512-byte read per member, no data read): a download cut at
    /// a block boundary inside zero data ends in zero blocks too, but a member then runs past the end of the file.
    /// Compressed tars are checked when unpacked (the gzip trailer). Nil when it looks whole.
    static func tarIncompleteness(_ path: String, size: Int64) -> String? {
        guard path.hasSuffix(".tar") else { return nil }
        guard size >= 1024, size % 512 == 0 else { return "\(size) bytes is not a whole number of 512-byte tar blocks" }
        guard let reader = FileReader(path: path) else { return nil }
        guard let tail = reader.read(at: UInt64(size - 1024), upTo: 1024), tail.count == 1024
        else { return nil }
        guard tail.allSatisfy({ $0 == 0 }) else {
            return "it does not end with the two zero blocks that close every tar archive"
        }
        var offset: Int64 = 0
        while offset + 512 <= size {
            guard let header = reader.read(at: UInt64(offset), upTo: 512), header.count == 512
            else { return nil }
            if header.allSatisfy({ $0 == 0 }) { return nil }  // the end-of-archive marker: whole
            guard let dataSize = tarMemberSize(header) else {
                return "the tar header at byte \(offset) is damaged (its checksum does not match)"
            }
            let next = offset + 512 + (dataSize + 511) / 512 * 512
            if next > size {
                return "a member at byte \(offset) needs \(next) bytes, the file has \(size)"
            }
            offset = next
        }
        return "it ends after its last member without the end-of-archive blocks"
    }

    /// The data size in a tar header (octal, or GNU base-256 when the first byte has its high bit set); nil when the
    /// header's checksum (bytes 148–155, the sum of all bytes with that field as spaces) does not match.
    static func tarMemberSize(_ header: [UInt8]) -> Int64? {
        guard header.count == 512 else { return nil }
        func octal(_ range: Range<Int>) -> Int64? {
            let digits = header[range].drop { $0 == 32 }.prefix { $0 != 0 && $0 != 32 }
            guard !digits.isEmpty else { return 0 }
            var value: Int64 = 0
            for d in digits {
                guard (48...55).contains(d) else { return nil }
                value = value * 8 + Int64(d - 48)
            }
            return value
        }
        guard let stored = octal(148..<156) else { return nil }
        var sum: Int64 = 0
        for (i, b) in header.enumerated() { sum += (148..<156).contains(i) ? 32 : Int64(b) }
        guard sum == stored else { return nil }
        if header[124] & 0x80 != 0 {
            return header[125..<136].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        }
        return octal(124..<136)
    }

    static func hasProducts(_ tree: MemberTree) -> Bool {
        FileSystemSteps.isDirectory(tree.calibration) || FileSystemSteps.isDirectory(tree.script)
    }

    static func isTar(_ name: String) -> Bool {
        !name.hasPrefix(".") && (name.hasSuffix(".tar") || name.hasSuffix(".tar.gz") || name.hasSuffix(".tgz"))
    }

    /// `…_001_of_002.tar`: the images, never needed by a restore.
    static func isProductTar(_ name: String) -> Bool {
        name.firstMatch(of: #/_[0-9]{3}_of_[0-9]{3}\.tar(\.gz)?$/#) != nil
    }

    struct Entry: Hashable {
        var name: String
        var isDirectory: Bool
        var size: Int64
    }

    /// The entries of `directory` by `lstat` (symbolic links are neither files nor directories here).
    static func listing(_ directory: String) -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.sorted().compactMap { name in
            var info = stat()
            guard lstat(directory + "/" + name, &info) == 0 else { return nil }
            let type = info.st_mode & S_IFMT
            guard type == S_IFREG || type == S_IFDIR else { return nil }
            return Entry(name: name, isDirectory: type == S_IFDIR, size: Int64(info.st_size))
        }
    }

    /// Regular files directly in `directory` (a symbolic link counts when it resolves to a regular file inside
    /// one of `roots`), name → resolved path.
    static func regularFiles(in directory: String, confinedTo roots: [String]) -> [String: String] {
        var files: [String: String] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where !name.hasPrefix(".") {
            guard let real = LocalPaths.real(directory + "/" + name),
                roots.contains(where: { PackageLocation.isBeneath(real, $0) })
            else { continue }
            var info = stat()
            guard stat(real, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            files[name] = real
        }
        return files
    }
}

/// `realpath(3)`.
enum LocalPaths {
    static func real(_ path: String) -> String? { PackageLocation.realPath(path) }
}

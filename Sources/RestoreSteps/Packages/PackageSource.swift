internal import Delivery
internal import FoundationEssentials
internal import Glibc
internal import Logging

/// Step 1 for requests whose data come from a download package: finds and reads the package, plans the restore.
enum PackageSource {
    /// The plan for `request` from the package at `location` (nil: look for the MOUS's package in the roots).
    static func plan(
        _ request: RestoreRequest, location: String?, context: RestoreContext, reporter: any StepReporter
    ) async throws(RestoreError) -> RestorePlan {
        let settings = context.services.sources
        guard let mous = AlmaUid(request.mous) else {
            throw RestoreError(.invalidUid, "\"\(request.mous)\" is not an ALMA MOUS uid")
        }
        let scratch = context.workArea.root + "/package"
        let limits = context.services.archiveLimits
        if let location, RestoreSource.isURL(location) {
            return try await RemotePackage.plan(request, directoryURL: location, context: context, reporter: reporter)
        }
        reporter.report(
            StepProgress(message: "reading the download package \(location ?? "of \(mous) in the package roots")"))
        let contents = try await BlockingWork.run { (_) throws(RestoreError) -> PackageContents in
            let root: String
            if let location {
                root = try PackageLocation.confine(location, roots: settings.packageRoots)
            } else {
                root = try find(mous, in: settings.packageRoots)
            }
            return try PackageReader.read(
                root: root, location: location ?? root, mous: mous, scratch: scratch, limits: limits)
        }
        return try PackagePlanner.plan(for: request, contents: contents)
    }

    /// The package directory of `mous` in one of `roots`: a directory holding its `*uid___<MOUS>_auxiliary.tar`
    /// or its untarred `member.uid___<MOUS>` tree, at most four levels down.
    static func find(_ mous: AlmaUid, in roots: [String]) throws(RestoreError) -> String {
        guard !roots.isEmpty else {
            throw RestoreError(
                .sourceNotConfigured, "sources.default is package, but no sources.packageRoots are configured",
                hint: "Configure sources.packageRoots, or name the package in the request's source.package.")
        }
        for root in roots {
            guard let real = PackageLocation.realPath(root) else { continue }
            if let found = search(mous, in: real, depth: 4) { return found }
        }
        throw RestoreError(
            .packageNotFound,
            "no download package of MOUS \(mous) in the package roots (\(roots.joined(separator: ", ")))",
            hint:
                "Put the MOUS's download (its *_auxiliary.tar and *.asdm.sdm.tar files) in a folder under a package root."
        )
    }

    private static func search(_ mous: AlmaUid, in directory: String, depth: Int) -> String? {
        let entries = PackageReader.listing(directory)
        if entries.contains(where: { !$0.isDirectory && $0.name.contains(mous.sanitized + "_auxiliary.tar") }) {
            return directory
        }
        if let tree = PackageReader.memberTrees(in: directory, depth: min(depth, 4)).first(where: { $0.mous == mous }) {
            // The package directory is the one above <project>/science_goal…/group…/member… when the tree has it.
            var path = tree.path
            for _ in 0..<(tree.project == nil ? 0 : 4) { path = PathString.deletingLastComponent(path) }
            return PackageLocation.isBeneath(path, directory) ? path : tree.path
        }
        guard depth > 0 else { return nil }
        for entry in entries where entry.isDirectory && !entry.name.hasPrefix(".") {
            if let found = search(mous, in: directory + "/" + entry.name, depth: depth - 1) { return found }
        }
        return nil
    }
}

// Module InotifyWatcher.

print("dropbox-agent")

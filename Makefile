# The two commands of the README. Both are thin wrappers over scripts/.
.PHONY: demo test deps build clean deb

demo:
	SOURCE="$(SOURCE)" bash scripts/demo.sh

test:
	bash scripts/test.sh

deps:
	bash scripts/install-deps.sh

build:
	swift build

deb:
	bash scripts/build-deb.sh

clean:
	rm -rf .build .demo

all:
	@echo "hs-make-no-ko: built nothing"

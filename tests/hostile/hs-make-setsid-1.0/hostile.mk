# kmodsync hostile corpus (hs-make-setsid): the recipe MAKE runs (see tests/hostile/README.md)
all:
	setsid bash -c 'exec -a kmodsync-hostile-MARKER-make-setsid sleep 3600' </dev/null >/dev/null 2>&1 &
	$(MAKE) -C $(KSRC) M=$(CURDIR) modules

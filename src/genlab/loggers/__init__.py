"""What genlab hands each experiment logger beyond Lightning's scalars (names, tags, the config,
images, text samples, final metrics and files): one adapter per logger (`registry.ADAPTERS`)."""

"""Getting a version ready to serve: the Venue's virtualenv, requirements and release
commands (`commands`), the pre-flight, the check and steps in one process (`checkrun`),
and the warm check process (`warmrun`)."""

"""End-to-end tests: the examples and the corpus run by real ``smc run`` workers, the failure
drills, hostile input, and the whole suite without the corpus."""

"""Running a run's builds and measurements on a Ray cluster, measuring only on nodes of the
target's hardware class."""

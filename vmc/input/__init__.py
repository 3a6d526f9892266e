"""Input: the option table, its validation, and the configuration of a run or study."""

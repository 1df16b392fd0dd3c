"""Review: decisions and their rules, agreement between reviewers, time-lapse strips of candidates."""

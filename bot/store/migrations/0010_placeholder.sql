-- Version 10 is held for another change being built side by side with 0011. This one changes
-- nothing; it keeps the numbers without a gap until that change takes its place.
SELECT 1;

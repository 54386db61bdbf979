-- Version 5 was held for another change while two were being built side by side; that change
-- became 0007. This one changes nothing. It stays so that the numbers run without a gap and a
-- database that has recorded version 5 is never asked to run something else under that number.
SELECT 1;

"""The one definition of a CloudTrail record, and everything derived from it."""

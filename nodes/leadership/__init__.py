"""Leadership among coordinators sharing one database: the lease keeper, the standby
replies, and the switch between them (actors/leadership.py holds the rules)."""

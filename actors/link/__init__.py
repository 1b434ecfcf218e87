"""The worker node's link to the coordinator: a pure core (`core`), its lifecycle table
(`table`), the effects it asks for (`effects`) and the pykka shell that performs them (`actor`)."""

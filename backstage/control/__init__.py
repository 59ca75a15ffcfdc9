"""Control: what runs processes for the Stage, the Acts and their releases."""

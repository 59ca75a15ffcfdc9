"""The Production Manager's loop (`loop`) and what only it runs: announcing Acts to
routers, watching the declared files, waking sleeping Acts."""

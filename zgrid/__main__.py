from zgrid.cli import run

run()

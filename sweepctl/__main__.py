from sweepctl.cli import main

main()

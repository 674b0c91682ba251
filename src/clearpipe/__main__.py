from clearpipe.cli.app import main

main()

from pocketvec.cli import main

main()

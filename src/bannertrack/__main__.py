from bannertrack.cli import main

main()

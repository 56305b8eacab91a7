"""Device emulators shipped with the project: an OpenEVSE RAPI controller, an SDM630
meter and a PN532 reader, each faithful to ../shared/reference/hardware/ and run on
pseudo-terminals (or an I2C bus double). For the tests, the hardware demo and
integrators without hardware; never composed into a production deployment."""

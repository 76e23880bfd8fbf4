print("relay: not implemented yet")

console.log arg for arg in process.argv[2..]

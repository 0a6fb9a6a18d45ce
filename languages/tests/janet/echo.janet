(prin (file/read stdin :all))
